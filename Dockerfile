# ResNet Explorer: the app's requirements.txt on Python 3.11 (as CI), served on 0.0.0.0:7860.
FROM python:3.11-slim
RUN useradd --create-home --uid 1000 explorer
WORKDIR /home/explorer/app
COPY --chown=explorer requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY --chown=explorer . .
USER explorer
ENV EXPLORER_HOST=0.0.0.0 \
    EXPLORER_PORT=7860 \
    EXPLORER_RUNS=/home/explorer/runs \
    TF_CPP_MIN_LOG_LEVEL=3
EXPOSE 7860
CMD ["python", "app.py"]

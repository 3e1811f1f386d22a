"""Draws the example images of the Classify tab (simple hand-made scenes, not CIFAR-10 images).

    python examples/make_examples.py
"""

from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).parent


def car():
    img = Image.new("RGB", (256, 256), (135, 190, 235))
    d = ImageDraw.Draw(img)
    d.rectangle([0, 170, 256, 256], fill=(110, 110, 110))
    d.rounded_rectangle([40, 120, 216, 185], 18, fill=(200, 30, 30))
    d.polygon([(80, 120), (105, 85), (165, 85), (190, 120)], fill=(185, 25, 25))
    d.polygon([(95, 118), (112, 92), (140, 92), (140, 118)], fill=(170, 210, 240))
    d.polygon([(148, 118), (148, 92), (162, 92), (178, 118)], fill=(170, 210, 240))
    for x in (80, 176):
        d.ellipse([x - 22, 163, x + 22, 207], fill=(20, 20, 20))
        d.ellipse([x - 9, 176, x + 9, 194], fill=(160, 160, 160))
    return img


def airplane():
    img = Image.new("RGB", (256, 256), (120, 170, 225))
    d = ImageDraw.Draw(img)
    d.ellipse([30, 110, 230, 145], fill=(235, 235, 240))
    d.polygon([(100, 125), (150, 125), (110, 60), (95, 60)], fill=(210, 210, 220))
    d.polygon([(100, 130), (150, 130), (110, 200), (95, 200)], fill=(210, 210, 220))
    d.polygon([(195, 125), (225, 125), (235, 90), (220, 90)], fill=(210, 210, 220))
    return img


def ship():
    img = Image.new("RGB", (256, 256), (160, 200, 235))
    d = ImageDraw.Draw(img)
    d.rectangle([0, 160, 256, 256], fill=(30, 80, 150))
    d.polygon([(30, 150), (226, 150), (200, 190), (56, 190)], fill=(60, 60, 70))
    d.rectangle([90, 110, 170, 150], fill=(235, 235, 235))
    d.rectangle([115, 80, 135, 110], fill=(200, 40, 40))
    return img


def frog():
    img = Image.new("RGB", (256, 256), (90, 120, 60))
    d = ImageDraw.Draw(img)
    d.ellipse([60, 100, 200, 200], fill=(70, 160, 50))
    for x in (85, 145):
        d.ellipse([x, 80, x + 35, 115], fill=(70, 160, 50))
        d.ellipse([x + 10, 88, x + 25, 103], fill=(10, 10, 10))
    d.arc([95, 140, 165, 175], 20, 160, fill=(20, 60, 20), width=4)
    return img


if __name__ == "__main__":
    for name, draw in [("red_car", car), ("airplane", airplane), ("ship", ship), ("frog", frog)]:
        draw().save(HERE / f"{name}.png")

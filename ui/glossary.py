"""A short glossary at the foot of the page, reachable from where each word appears: `linked`
turns a term's first mention in a text on the page into a link that opens the glossary at it
(`GLOSSARY_JS`: the link opens the closed section and scrolls there, in the same tab)."""

from __future__ import annotations

import re

import gradio as gr

# term -> (its anchor, what it means here); the words the readings use without explaining
TERMS = {
    "batch norm": ("batch-norm", ("**Batch norm** (batch normalization, Ioffe and Szegedy 2015): each "
                   "channel of a layer's output is shifted and scaled to mean 0 and variance 1 over the "
                   "batch (over the training set's running averages at test time), then given a learned "
                   "scale and shift. It is what lets a 56-layer plain net train at all, and what makes a "
                   "deep plain net's gradient *explode* at initialization rather than vanish.")),
    "pre-activation": ("pre-activation", ("**Pre-activation** (He et al. 2016, the v2 nets): batch norm "
                       "and ReLU come *before* each convolution, so the shortcut carries the sum on "
                       "untouched from block to block; in v1 (post-activation) a ReLU follows each add.")),
    "filter-normalized": ("filter-normalized", ("**Filter-normalized direction** (Li et al. 2018): a "
                          "random direction in weight space whose every filter is scaled to the norm of "
                          "the same filter of the trained weights, so a step of 1 means as much in a "
                          "wide layer as in a narrow one, and two nets' landscapes can be compared.")),
    "nat": ("nat", ("**Nat**: the unit of the cross-entropy loss with natural logarithms. Guessing "
            "uniformly among CIFAR-10's 10 classes costs ln 10 = 2.30 nats; a loss 1 nat higher means "
            "the right class gets e ≈ 2.7 times less probability.")),
    "multiply-adds": ("multiply-adds", ("**Multiply-adds** (MACs): one multiplication and one addition, "
                      "the unit of a convolution's work; a 3x3 convolution from C to C channels on an HxW "
                      "map costs 9·C·C·H·W of them per image.")),
}
GLOSSARY_JS = """() => {
  if (window.explorerGlossary) return [];
  window.explorerGlossary = true;
  document.addEventListener('click', (event) => {
    const link = event.target.closest && event.target.closest('a[href^="#glossary-"]');
    if (!link) return;
    event.preventDefault();
    const section = document.querySelector('#glossary');
    const header = section && section.querySelector('button, .label-wrap');
    const id = link.getAttribute('href').slice(1);
    if (header && !document.getElementById(id)?.offsetParent) header.click();  // closed: open it
    setTimeout(() => document.getElementById(id)?.scrollIntoView({block: 'center'}), 300);
  }, true);
  return [];
}"""


def linked(text: str) -> str:
    """`text` (Markdown) with each glossary term's first mention made a link to its entry."""
    if not text:
        return text
    for term, (anchor, _) in TERMS.items():
        if f"(#glossary-{anchor})" in text:
            continue  # linked already: the first mention only
        # a whole word, not inside a link already, in either spelling of "normalized"
        word = re.escape(term).replace("ized", "i[sz]ed")
        pattern = re.compile(r"(?<![\w\[#-])(" + word + r"s?)(?![\w\]-])", re.IGNORECASE)
        text = pattern.sub(rf"[\1](#glossary-{anchor})", text, count=1)
    return text


def build() -> gr.Accordion:
    """The glossary section (closed until a term's link opens it)."""
    entries = "\n\n".join(f'<span id="glossary-{anchor}"></span>{meaning}'
                          for anchor, meaning in TERMS.values())
    with gr.Accordion("Glossary", open=False, elem_id="glossary") as section:
        gr.Markdown(entries, sanitize_html=False)
    return section

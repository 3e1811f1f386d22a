"""The glossary's links: a term's first mention only, whole words, never inside a link."""

from ui.glossary import TERMS, linked


def test_each_terms_first_mention_links_to_its_entry():
    text = "With batch norm, batch norm again; 40.8 M multiply-adds; within 1 nat; 2 nats; natural."
    out = linked(text)
    assert out.count("[batch norm](#glossary-batch-norm)") == 1 and out.count("batch norm") == 2
    assert "[multiply-adds](#glossary-multiply-adds)" in out
    assert "[nat](#glossary-nat)" in out and "2 nats" in out and "natural" in out  # the first only
    assert linked(out) == out  # a link is never linked again


def test_both_spellings_of_normalized_and_every_anchor_unique():
    assert "(#glossary-filter-normalized)" in linked("two filter-normalised directions")
    anchors = [anchor for anchor, _ in TERMS.values()]
    assert len(set(anchors)) == len(anchors)

"""Training options: every field checked against its one named bound, from a config or a request."""

import pytest

from explorer.train.config import TrainConfig


@pytest.mark.parametrize("field, value, message", [
    ("epochs", 0, "epochs must be between"),
    ("epochs", True, "epochs must be between"),
    ("test_subset", -5, "test subset"),
    ("max_seconds", -1.0, "max seconds"),
    ("cutout", 40, "cutout"),
    ("steps_per_execution", 0, "steps_per_execution"),
    ("optimizer", "rmsprop", "optimizer must be sgd or adam"),
    ("depth", 21, "nearest valid depths are 20 and 26"),
    ("seed", -5, "seed must be a whole number"),
    ("seed", 2**40, "seed must be a whole number"),
    # a config file's text or null where a number belongs: refused, not a TypeError
    ("learning_rate", "0.1", "learning rate out of range"),
    ("momentum", None, "momentum"),
    ("weight_decay", True, "weight decay"),
    ("label_smoothing", float("nan"), "label smoothing"),
])
def test_config_validation(field, value, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**{field: value}).validate()


def test_a_request_is_read_with_the_same_bounds():
    """Raw page and API values (text, floats, flags as words) become a validated config; each
    out-of-range value is refused with its one named bound."""
    from explorer.core.specs import MAX_SEED
    from explorer.train.config import MAX_EPOCHS, MAX_SUBSET

    config = TrainConfig.from_request(depth="56", version=1.0, residual="false", epochs=3.0, subset="5000",
                                     seed=MAX_SEED, learning_rate="0.05")
    assert ((config.depth, config.version, config.residual, config.epochs, config.subset)
            == (56, 1, False, 3, 5000))
    assert config.seed == MAX_SEED and config.learning_rate == 0.05
    for fields, message in [({"depth": 10**9}, "depth must be a whole number from 1 to 2000"),
                            ({"version": 3}, "version must be a whole number from 1 to 2"),
                            ({"epochs": MAX_EPOCHS + 1},
                             f"epochs must be a whole number from 1 to {MAX_EPOCHS}"),
                            ({"subset": -1}, f"subset must be a whole number from 0 to {MAX_SUBSET}"),
                            ({"seed": MAX_SEED + 1}, "seed must be a whole number"),
                            ({"depth": 21}, "nearest valid depths are 20 and 26"),
                            ({"residual": "maybe"}, "residual must be true or false"),
                            ({"learning_rate": "fast"}, "learning rate must be a number"),
                            ({"optimizer": 3}, "optimizer must be text"),
                            ({"colour": "red"}, "unknown training options")]:
        with pytest.raises(ValueError, match=message):
            TrainConfig.from_request(**fields)
    with pytest.raises(ValueError, match="seed must be a whole number"):
        TrainConfig(seed=MAX_SEED + 1).validate()

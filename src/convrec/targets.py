"""What prepared data and the models agree on about targets, in a module of its own: the
prepare stages write it and the train stages read it, and neither should depend on the
other's code."""

# The target where there is nothing to predict: after a sequence's last class, on padded
# tokens. Losses ignore it and scores skip it.
TARGET_PAD = -1

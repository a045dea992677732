"""rt2: RT-2 vision-language-action models in PyTorch.

Stages, in the direction dependencies flow:
actions -> sim -> data -> models -> train -> policy -> serve -> eval.
Import the stage you need (``from rt2.actions import ActionTokenizer``); this top-level module stays light so
that ``rt2 --help`` and the robot client never pay for torch.
"""

__version__ = "0.1.0"

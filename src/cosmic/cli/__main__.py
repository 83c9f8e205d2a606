"""``python -m cosmic.cli`` (as torchrun runs it: ``torchrun ... -m cosmic.cli train stage1 ...``)."""

from cosmic.cli.main import main

main()

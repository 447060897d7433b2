"""The policy file: its model (`model.py`), loading and validation (`file.py`), shared values."""

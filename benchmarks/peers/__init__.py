"""The Python peers pygoro is compared with, one module each, every workload
written the way that library's users write it (see common.py for the
contract)."""

"""Converters from public labelled sets to triage rows (one module per set).

Each module is run as ``python -m services.classify.training.convert.<set_id>`` and
writes ``$AMENDS_TRIAGE_DATA/<set_id>.jsonl.gz``; ``common`` holds what they share and
``../sets/<set_id>.yaml`` says where each set comes from, its licence and label mapping.
"""

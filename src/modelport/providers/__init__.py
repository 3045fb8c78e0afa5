"""Hosted model APIs behind one OpenAI-shaped interface (see ``providers/base.py``)."""

"""What every keyadmin form shares."""

from __future__ import annotations

# Text inputs never go to spell-check services: Chrome's Enhanced Spellcheck and Edge's Editor
# send field contents to the vendor ("spell-jacking"), and a customer email or key name is not
# theirs to read.
QUIET = {"spellcheck": "false", "autocapitalize": "off", "autocorrect": "off"}

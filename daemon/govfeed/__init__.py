"""govfeed: government mailing-list email to a clean, searchable SQLite database."""

from __future__ import annotations

__version__ = "0.1.0"

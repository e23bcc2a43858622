"""plurspool: schedule posts to Nostr, Mastodon, Bluesky and any program from a spool of files."""

__version__ = "0.1.0"

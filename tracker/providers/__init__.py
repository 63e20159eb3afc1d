"""Providers: the one registry (`registry`), one connector module each, accounts, rate limits."""

"""Sending mail: SMTP settings per account, compose, drafts, the Outbox and the Sent folder."""

"""Exports of usage and cost: CSV, JSON, the Excel month pack and FOCUS 1.2."""

"""Shared kernel of govex: the error hierarchy and the settings every package reads.

Kept tiny on purpose: the packages of the house (catalog, contracts, connectors, quality,
lineage, exchange) depend on this and on each other's public APIs only.
"""

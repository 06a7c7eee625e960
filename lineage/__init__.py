"""OpenLineage events, record provenance, trace, disputes and the audit log."""

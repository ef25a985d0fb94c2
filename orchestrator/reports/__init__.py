"""What users read: the JSON documents, terminal tables, the cost report and its HTML page."""

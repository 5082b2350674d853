"""Free-text mining: redaction, sentiment, codebook themes, emerging topics and safeguarding."""

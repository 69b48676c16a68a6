"""Redaction for the offline reviewer tool: identifiers in text, metadata in attachments."""

from reviewer_tool.redaction.attachments import AttachmentRefused, clean_attachment
from reviewer_tool.redaction.detect import (
    Finding,
    detect_identifiers,
    identity_values_in,
    imo_check_digit_ok,
    imo_company_check_ok,
    mmsi_plausible,
    redact_text,
)
from reviewer_tool.redaction.position import coarsen_position

__all__ = [
    "AttachmentRefused",
    "Finding",
    "clean_attachment",
    "coarsen_position",
    "detect_identifiers",
    "identity_values_in",
    "imo_check_digit_ok",
    "imo_company_check_ok",
    "mmsi_plausible",
    "redact_text",
]

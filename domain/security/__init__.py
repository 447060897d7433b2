"""Security incidents raised by SIEM and SOAR tools, and the emergency revoke they start."""

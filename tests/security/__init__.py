"""The security suite (issue 8): each test names the OWASP ASVS 5.0 requirement it covers;
docs/security.md lists them."""

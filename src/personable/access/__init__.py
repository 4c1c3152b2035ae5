"""Access: API keys with scopes (publishable and secret), OAuth 2.0 client
credentials tokens, user tokens for a web page's own reads, rate limits
(docs/security.md)."""

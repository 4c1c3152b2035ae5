"""The profile document: what the profile API returns and the online store keeps.

Keys: profile_id, created_at, updated_at, traits, trait_sources (observed_at and
source per trait), computed (first/last seen, event, session, page and order
counts, revenue, last device and channel), identities, consents (granted,
observed_at, source per purpose), merged_from (old profile ids that now
redirect here) and recent_events (newest first). Times are ISO 8601 UTC.
"""

RECENT_EVENTS = 50  # kept per document; the API serves up to this many

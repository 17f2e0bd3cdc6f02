-- Optimistic concurrency for moderators: every change of a comment's status
-- bumps its version; a decision may name the version it saw and is refused
-- when the comment changed since. Decisions also carry a reason code.
ALTER TABLE comments ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE review_items ADD COLUMN decision_code TEXT;

-- The toxicity score of a comment (its highest category), beside the spam
-- score. Comments written before it have none: 0.
ALTER TABLE comments
    ADD COLUMN toxicity_score double precision NOT NULL DEFAULT 0
        CHECK (toxicity_score BETWEEN 0 AND 1);

-- Per-author and per-IP submission rates, tenant settings (issue #14); 0 = off.
ALTER TABLE tenants ADD COLUMN max_comments_per_author_per_minute INTEGER NOT NULL DEFAULT 0
    CHECK (max_comments_per_author_per_minute >= 0);
ALTER TABLE tenants ADD COLUMN max_comments_per_ip_per_minute INTEGER NOT NULL DEFAULT 0
    CHECK (max_comments_per_ip_per_minute >= 0);

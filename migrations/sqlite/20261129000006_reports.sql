-- Reader reports (ReportComment): one per reporter and comment. Enough of
-- them (the tenant's report_threshold), or one report of illegal content,
-- send an approved comment back to the review queue.
ALTER TABLE tenants ADD COLUMN report_threshold INTEGER NOT NULL DEFAULT 3
    CHECK (report_threshold BETWEEN 1 AND 1000);
ALTER TABLE tenants ADD COLUMN hide_reported INTEGER NOT NULL DEFAULT 0
    CHECK (hide_reported IN (0, 1));

CREATE TABLE comment_reports (
    tenant_id   BLOB NOT NULL,
    comment_id  BLOB NOT NULL,
    reporter_id TEXT NOT NULL,
    reason      TEXT NOT NULL
        CHECK (reason IN ('offensive', 'spam', 'harassment', 'illegal', 'other')),
    detail      TEXT NOT NULL,
    create_time INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, comment_id, reporter_id),
    FOREIGN KEY (tenant_id, comment_id) REFERENCES comments (tenant_id, comment_id)
) STRICT;
-- The per-reporter rate limit counts a reporter's recent reports.
CREATE INDEX comment_reports_by_reporter ON comment_reports (tenant_id, reporter_id, create_time);

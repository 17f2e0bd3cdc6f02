-- Reader reports (ReportComment): one per reporter and comment. Enough of
-- them (the tenant's report_threshold), or one report of illegal content,
-- send an approved comment back to the review queue.
ALTER TABLE tenants
    ADD COLUMN report_threshold integer NOT NULL DEFAULT 3
        CHECK (report_threshold BETWEEN 1 AND 1000),
    ADD COLUMN hide_reported boolean NOT NULL DEFAULT false;

CREATE TABLE comment_reports (
    tenant_id   uuid NOT NULL,
    comment_id  uuid NOT NULL,
    reporter_id text NOT NULL,
    reason      text NOT NULL
        CHECK (reason IN ('offensive', 'spam', 'harassment', 'illegal', 'other')),
    detail      text NOT NULL,
    create_time timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, comment_id, reporter_id),
    FOREIGN KEY (tenant_id, comment_id) REFERENCES comments (tenant_id, comment_id)
);
-- The per-reporter rate limit counts a reporter's recent reports.
CREATE INDEX comment_reports_by_reporter ON comment_reports (tenant_id, reporter_id, create_time);

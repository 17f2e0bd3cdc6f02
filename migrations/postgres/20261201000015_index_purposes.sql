-- What each index on a table every submission writes is for: the query it
-- serves, kept in the catalog (`\di+` shows it) so that an index nobody
-- reads can be recognised and dropped. Measured under the submission load
-- (BENCHMARKS.md, issue #12): the indexes read by the write path are
-- comments_by_client_id, comments_by_author, comments_by_text_hash,
-- decision_events_pkey and decision_events_by_sequence; the others serve
-- listings and moderators, one read for many writes, and are kept for them.

COMMENT ON INDEX comments_pkey IS
    'GetComment; the row lock of a decision, a reopen or a report (comment_for_update)';
COMMENT ON INDEX comments_by_client_id IS
    'SubmitComment idempotency: ON CONFLICT (tenant_id, client_comment_id), and reading back the stored comment of a retry';
COMMENT ON INDEX comments_by_status IS
    'ListComments by status for the whole tenant, newest first, keyset pages on (create_time, comment_id)';
COMMENT ON INDEX comments_by_article IS
    'ListComments of one article and status (a publisher''s comment page), newest first, keyset pages';
COMMENT ON INDEX comments_by_author IS
    'The author''s latest comments for the spam history (AuthorStore::author_facts), GetAuthor''s recent comments and counts by status';
COMMENT ON INDEX comments_by_text_hash IS
    'Spam history: the same normalised text by other authors in the last 24 hours (author_facts)';

COMMENT ON INDEX review_items_pkey IS
    'DecideReview and ReleaseReviews by review id (row lock)';
COMMENT ON INDEX review_items_open IS
    'ClaimReviews (FOR UPDATE SKIP LOCKED) and ListReviewQueue in priority order; partial: open items only';
COMMENT ON INDEX review_items_open_by_article IS
    'ClaimReviews and ListReviewQueue filtered by article; partial: open items only';
COMMENT ON INDEX review_items_one_open_per_comment IS
    'At most one open item per comment (a report or a reopen never queues a comment twice); has_open_item';

COMMENT ON INDEX audit_events_pkey IS
    'ListAuditEvents of the whole tenant, keyset pages on event_id';
COMMENT ON INDEX audit_events_by_comment IS
    'ListAuditEvents of one comment (its trail, with the events of its review items); partial: events about a comment';
COMMENT ON INDEX audit_events_by_author IS
    'ListAuditEvents of one author (standing changes and the events of the author''s comments); partial';

COMMENT ON INDEX decision_events_pkey IS
    'Numbering rounds: the events after the watermark (decision_numbering), and the update of each by id';
COMMENT ON INDEX decision_events_by_sequence IS
    'WatchDecisions and WatchQueue: the events after a cursor; a round''s next number per tenant (max); unique: one event per number';

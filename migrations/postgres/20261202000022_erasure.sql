-- Erasure at an author's request (AdminService.EraseAuthor, issue #14):
-- when a comment or a report lost what identified its author; NULL while
-- kept. A second erasure finds nothing left to erase and says so.
ALTER TABLE comments ADD COLUMN erase_time timestamptz;
ALTER TABLE comment_reports ADD COLUMN erase_time timestamptz;

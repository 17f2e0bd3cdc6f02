-- No foreign-key triggers on the rows every submission writes.
--
-- `comments.tenant_id → tenants` ran a trigger per comment that locked the
-- tenant's row (`FOR KEY SHARE`): every concurrent group commit shared a
-- lock on one row, which Postgres records as a multixact. `review_items →
-- comments` checked, per held comment, a row the same statement had just
-- inserted. Both facts are guaranteed by the code that writes the rows:
-- a comment's tenant is the one its API key authenticates (keys and tenants
-- are never deleted), and a review item is written from the comment rows
-- its statement inserted, or after locking its comment (`requeue_in`).
--
-- What the keys also did, refusing to delete a parent that still has rows,
-- moves to triggers on the parents, which run only when someone deletes:
-- nothing deletes tenants or comments today, and these keep it so for any
-- tool connecting to the database.

ALTER TABLE comments DROP CONSTRAINT comments_tenant_id_fkey;
ALTER TABLE review_items DROP CONSTRAINT review_items_tenant_id_comment_id_fkey;

CREATE FUNCTION tenants_keep_owners() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM comments WHERE tenant_id = OLD.tenant_id) THEN
        RAISE EXCEPTION 'tenant % still owns comments', OLD.tenant_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN OLD;
END
$$;
CREATE TRIGGER tenants_keep_owners
    BEFORE DELETE ON tenants
    FOR EACH ROW EXECUTE FUNCTION tenants_keep_owners();

CREATE FUNCTION comments_keep_review_items() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM review_items
               WHERE tenant_id = OLD.tenant_id AND comment_id = OLD.comment_id) THEN
        RAISE EXCEPTION 'comment % still has review items', OLD.comment_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN OLD;
END
$$;
CREATE TRIGGER comments_keep_review_items
    BEFORE DELETE ON comments
    FOR EACH ROW EXECUTE FUNCTION comments_keep_review_items();

-- Chunk tags (issue #12): a thread's event ids carry the tag of the chunk they are stored in
-- and their row's index there (src/learn/event-id.ts newEventId, decision-chunk.ts nextId), so
-- feedback finds its decision with one probe of this index, and confirms it with the 16 bytes
-- at that row of the chunk's directory. Before, it searched every chunk whose span held the
-- id's time (GiST), each with position() over its directory: ~36 us of PostgreSQL's time per
-- lookup, feedback read back from the database 16.2k events/s against 25.1k with the decision
-- in memory (`npm run bench -- feedback`, 2026-12-03).
--
-- Tags are random (24 bits, drawn per chunk), not unique: a probe may meet another chunk with
-- the same tag, which the directory check turns away. Chunks without a tag (written before this
-- migration, or whose ids were made elsewhere) are still found by time, through the span index,
-- which now covers only them.
ALTER TABLE decision_chunks ADD COLUMN tag integer CHECK (tag BETWEEN 0 AND 16777215);
CREATE INDEX decision_chunks_tag ON decision_chunks (tag) WHERE tag IS NOT NULL;
DROP INDEX decision_chunks_span;
CREATE INDEX decision_chunks_span ON decision_chunks USING gist (span) WHERE tag IS NULL;

-- Bandit decisions (issue #13): a bandit model's answer is a decision per row, the arm it chose
-- (`action`, 0-based index into the model's arms) with the probability of choosing it. Routed
-- decisions without a bandit keep `action` NULL. Feedback copies the decision's action with the
-- rest of its fields, so learners and off-policy evaluation read one table.
-- A bandit's `propensity` is the arm's probability given the version that decided (what
-- off-policy evaluation needs); behind a route, the route's share of that version is the
-- variant's weight in route generation `route_gen`.
ALTER TABLE decisions ADD COLUMN action integer CHECK (action IS NULL OR action >= 0);
ALTER TABLE feedback_events ADD COLUMN action integer CHECK (action IS NULL OR action >= 0);

-- Decision contexts (the input features) as their float32 bytes, little-endian, instead of the
-- real[] column `features` of migration 003, which new rows leave NULL: PostgreSQL parsed that
-- text number by number (~180 us of the embedded database's time per row of 100 features
-- against ~25 us for bytes, src/learn/decision.ts). Readers take `context`, else `features`.
ALTER TABLE decisions ADD COLUMN context bytea;

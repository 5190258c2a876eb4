-- Bandit decisions (issue #13): a bandit model's answer is a decision per row, the arm it chose
-- (`action`, 0-based index into the model's arms) with the probability of choosing it. Routed
-- decisions without a bandit keep `action` NULL. Feedback copies the decision's action with the
-- rest of its fields, so learners and off-policy evaluation read one table.
-- `propensity` stays the probability of the whole decision: for a bandit behind a route, the
-- route's propensity times the arm's.
ALTER TABLE decisions ADD COLUMN action integer CHECK (action IS NULL OR action >= 0);
ALTER TABLE feedback_events ADD COLUMN action integer CHECK (action IS NULL OR action >= 0);

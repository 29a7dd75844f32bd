"""Built-in scoring plugins: the ten-criterion scorecard (销售机会评估表) and stakeholder basics."""

"""Alert rules, their evaluation, exactly-once firing and delivery by email, Slack or webhook."""

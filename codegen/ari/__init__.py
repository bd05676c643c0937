"""The adaptive-resolution dispatcher: several compiled models ("stages") in one firmware,
run cheapest first; a stage answers when the margin of its scores reaches its threshold, and
otherwise the next stage runs on the same input. int8 then float of one model is ARI; a
little network then a big one is a big-little cascade; the mechanism is the same."""

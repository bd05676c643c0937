"""What people read: the memory table after a build, the model inspection, the simulation
summary and the profile (terminal, JSON and HTML)."""

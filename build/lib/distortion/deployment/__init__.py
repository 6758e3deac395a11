"""What a deployment keeps for a photo: the enrolment settings, the distorter, refinement, keys and keyed templates."""

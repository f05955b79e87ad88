"""Release rings: promote what a device class's canary runs to the rest of the class."""

"""What every tab of the window uses: workers (tasks in threads), widgets, the theme and the window's wording.
No feature package is imported from here."""

"""What every tab of the window uses: workers (tasks in threads), widgets, plots, images for Qt, the theme and
the window's wording.
No feature package is imported from here."""

"""What every tab of the window uses: workers (tasks in threads), widgets, plots, images for Qt, the theme,
what a failure says in the window, words about a model (model_words), and a wrapping row of buttons (flow).
No feature package is imported from here."""

"""The app's screens: the explorer, help, dialogs and the jobs screen."""

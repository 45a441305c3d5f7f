"""The app's screens: session browser, session, inspector, forms and dialogs."""

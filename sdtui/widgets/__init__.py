"""The explorer's widgets: the virtual file list, panes, sidebar, inspector and jobs strip."""

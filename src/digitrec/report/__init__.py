"""Reports: plots now; HTML run reports and explain pages (Jinja2 templates) next."""

"""Reports: matplotlib plots, the HTML run report, the explain page and run comparisons."""

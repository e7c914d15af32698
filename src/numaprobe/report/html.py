def html_report(docs, path): raise NotImplementedError

print("tenops")

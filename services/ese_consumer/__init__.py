"""ese-consumer: the Streamlit live dashboard of the event-streaming demo."""

"""`streamlit run app.py` starts GDMCD Studio; the app itself is the gdmcd_app package."""

from gdmcd_app.main import main

main()
